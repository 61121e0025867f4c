"""Embedded reference lists for the synthetic population: real French prénoms and surnames,
real communes of the Métropole de Lyon, street names.

Lists are ordered roughly by frequency (most common first); the generator turns rank into a
Zipf-like weight, so common names recur (namesakes) while the tail stays rare.
"""

from __future__ import annotations

# ~200 male prénoms, roughly most frequent first (all generations mixed).
MALE_GIVEN_NAMES: tuple[str, ...] = (
    "Jean", "Pierre", "Michel", "Philippe", "Alain", "Nicolas", "Christophe", "Patrick", "Daniel",
    "Thomas", "Julien", "Éric", "Frédéric", "Laurent", "Stéphane", "David", "Sébastien", "Olivier",
    "Bernard", "Pascal", "Jacques", "Antoine", "Alexandre", "Lucas", "Hugo", "Louis", "Gabriel", "Léo",
    "Raphaël", "Arthur", "Jules", "Adam", "Maël", "Paul", "Nathan", "Théo", "Mathis", "Tom", "Noah",
    "Ethan", "Clément", "Maxime", "Romain", "Guillaume", "Vincent", "François", "Thierry", "Didier",
    "Gérard", "Christian", "Dominique", "Serge", "Bruno", "Yves", "Marc", "André", "René", "Claude",
    "Henri", "Jean-Pierre", "Jean-Claude", "Jean-Luc", "Jean-François", "Jean-Marc", "Jean-Michel",
    "Jean-Paul", "Jean-Louis", "Jean-Jacques", "Jean-Baptiste", "Jean-Philippe", "Pierre-Louis",
    "Pierre-Yves", "Marc-Antoine", "Loïc", "Gaël", "Noé", "Timothée", "Mathéo", "Jérôme", "Cédric",
    "Grégory", "Fabrice", "Benoît", "Hervé", "Régis", "Joël", "Gaëtan", "Aurélien", "Anthony", "Kévin",
    "Jérémy", "Mickaël", "Yannick", "Ludovic", "Damien", "Florian", "Quentin", "Benjamin", "Adrien",
    "Valentin", "Baptiste", "Victor", "Martin", "Samuel", "Simon", "Axel", "Enzo", "Mathieu", "Matthieu",
    "Rémi", "Rémy", "Xavier", "Emmanuel", "Arnaud", "Sylvain", "Franck", "Lionel", "Hugues", "Gilles",
    "Marcel", "Roger", "Robert", "Georges", "Lucien", "Maurice", "Raymond", "Fernand", "Émile", "Léon",
    "Gaston", "Charles", "Édouard", "Étienne", "Félix", "Gaspard", "Augustin", "Côme", "Malo", "Sacha",
    "Timéo", "Liam", "Aaron", "Nolan", "Eliott", "Ilyès", "Mohamed", "Ahmed", "Karim", "Rachid", "Mehdi",
    "Yanis", "Amine", "Bilal", "Youssef", "Ibrahim", "Moussa", "Mamadou", "Ousmane", "Sofiane", "Walid",
    "Nabil", "Hakim", "Samir", "Farid", "Omar", "Ali", "Hamza", "Ayoub", "Ismaël", "Anis", "Rayan",
    "Kylian", "Killian", "Dylan", "Jordan", "Kenzo", "Lenny", "Esteban", "Diego", "Manuel", "José",
    "Antonio", "Luca", "Marco", "Tiago", "Alexis", "Jonathan", "Cyril", "Fabien", "Thibault", "Thibaut",
    "Bastien", "Corentin", "Erwan", "Yann", "Tanguy", "Gwenaël", "Ronan", "Brieuc", "Mattéo", "Noël",
    "Aimé", "Hippolyte", "Octave", "Basile", "Marius", "Léandre", "Joachim", "Lilian",
)

# ~200 female prénoms.
FEMALE_GIVEN_NAMES: tuple[str, ...] = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Martine", "Christine",
    "Monique", "Valérie", "Sandrine", "Stéphanie", "Véronique", "Sophie", "Céline", "Julie", "Aurélie",
    "Émilie", "Camille", "Laura", "Léa", "Manon", "Chloé", "Emma", "Jade", "Louise", "Alice", "Lina",
    "Rose", "Anna", "Mia", "Inès", "Léna", "Ambre", "Zoé", "Juliette", "Lou", "Agathe", "Jeanne",
    "Margaux", "Lucie", "Sarah", "Clara", "Anaïs", "Pauline", "Marine", "Mathilde", "Élodie", "Audrey",
    "Caroline", "Virginie", "Laurence", "Patricia", "Brigitte", "Nicole", "Jacqueline", "Danielle",
    "Chantal", "Michèle", "Annie", "Josiane", "Colette", "Simone", "Denise", "Yvette", "Madeleine",
    "Suzanne", "Germaine", "Odette", "Paulette", "Marcelle", "Hélène", "Anne", "Agnès", "Béatrice",
    "Claire", "Florence", "Corinne", "Karine", "Laetitia", "Delphine", "Marie-Claire", "Marie-Christine",
    "Marie-Thérèse", "Marie-France", "Marie-Hélène", "Marie-Laure", "Marie-Pierre", "Marie-Noëlle",
    "Anne-Marie", "Anne-Sophie", "Anne-Laure", "Marie-Anne", "Marie-Louise", "Marie-José", "Rose-Marie",
    "Gaëlle", "Maëlle", "Maëlys", "Noémie", "Océane", "Solène", "Clémence", "Charlotte", "Capucine",
    "Apolline", "Héloïse", "Éloïse", "Victoire", "Joséphine", "Adèle", "Romane", "Élise", "Eva", "Nina",
    "Lola", "Jasmine", "Yasmine", "Sofia", "Fatima", "Aïcha", "Nadia", "Samia", "Leïla", "Amina",
    "Khadija", "Sabrina", "Karima", "Malika", "Naïma", "Salma", "Myriam", "Sonia", "Farida", "Assia",
    "Fatou", "Aminata", "Mariam", "Awa", "Aïssatou", "Ana", "Maria", "Carla", "Lucia", "Giulia",
    "Teresa", "Isabel", "Paula", "Rita", "Cécile", "Geneviève", "Mireille", "Ginette", "Huguette",
    "Renée", "Raymonde", "Lucienne", "Andrée", "Gisèle", "Évelyne", "Régine", "Claudine", "Muriel",
    "Nadine", "Pascale", "Éliane", "Fabienne", "Sabine", "Christelle", "Séverine", "Magali",
    "Emmanuelle", "Gwenaëlle", "Nolwenn", "Morgane", "Maïwenn", "Enora", "Anouk", "Lise", "Margot",
    "Constance", "Bérénice", "Ophélie", "Mélanie", "Jennifer", "Jessica", "Vanessa", "Cindy", "Elsa",
    "Lisa", "Tiphaine", "Justine", "Alexandra", "Amandine", "Coralie", "Estelle", "Hortense", "Iris",
    "Mila", "Alba", "Romy", "Thaïs", "Zélie", "Bérangère", "Dominique", "Gabrielle", "Léonie",
)

# ~200 surnames, most frequent first; accented, compound, particled and apostrophised ones included.
SURNAMES: tuple[str, ...] = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
    "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard",
    "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Lefebvre", "Faure",
    "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand",
    "Gauthier", "Garcia", "Perrin", "Robin", "Clément", "Morin", "Nicolas", "Henry", "Roussel",
    "Mathieu", "Gautier", "Masson", "Marchand", "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël",
    "Meyer", "Dufour", "Meunier", "Brun", "Blanchard", "Giraud", "Joly", "Rivière", "Lucas", "Brunet",
    "Gaillard", "Barbier", "Arnaud", "Martinez", "Gérard", "Roche", "Renard", "Schmitt", "Roy",
    "Leroux", "Colin", "Vidal", "Caron", "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud",
    "Dumas", "Lacroix", "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc",
    "Payet", "Rolland", "Leclercq", "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot",
    "Hubert", "Berger", "Carpentier", "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps", "Huet",
    "Vasseur", "Perez", "Boucher", "Fleury", "Royer", "Klein", "Jacquet", "Adam", "Paris", "Poirier",
    "Marty", "Aubry", "Guyot", "Carré", "Charles", "Renault", "Charpentier", "Ménard", "Maillard",
    "Baron", "Bertin", "Bailly", "Hervé", "Schneider", "Fernandez", "Le Gall", "Collet", "Léger",
    "Bouvier", "Julien", "Prévost", "Millet", "Perrot", "Daniel", "Le Roux", "Cousin", "Germain",
    "Breton", "Besson", "Langlois", "Rémy", "Le Goff", "Pelletier", "Lévêque", "Perrier", "Leblanc",
    "Barré", "Lebrun", "Marchal", "Weber", "Mallet", "Hamon", "Boulanger", "Jacob", "Monnier", "Michaud",
    "Rodriguez", "Guichard", "Gillet", "Étienne", "Grondin", "Poulain", "Tessier", "Chevallier",
    "Collin", "Chauvin", "Da Silva", "Bouchet", "Gay", "Lemaître", "Bénard", "Maréchal", "Humbert",
    "Reynaud", "Antoine", "Hoarau", "Perret", "Barthélemy", "Cordier", "Pichon", "Lejeune", "Gilbert",
    "Lamy", "Delaunay", "Pasquier", "Carlier", "Laporte", "De La Fontaine", "N'Diaye", "Diallo",
    "Traoré", "Benali", "Haddad", "Ben Ahmed", "Dos Santos", "Ferreira", "Pereira", "Rodrigues",
    "Nguyen", "Tran", "Le Bihan", "Saint-Martin", "D'Almeida", "Delacroix", "Dupré", "Le Floc'h",
)

# The long tail of surnames. France has about 1.3 million surnames; beyond the most common
# (above) the sandbox builds French-looking ones from these parts, simple forms for the more
# frequent ranks, particles and double names further down (see sandbox.population).
SURNAME_ROOTS: tuple[str, ...] = (
    "Bouch", "Char", "Fourn", "Lem", "Mar", "Gir", "Berg", "Del", "Pel", "Vall", "Cour", "Mont",
    "Roch", "Font", "Bell", "Chaz", "Gu", "Lar", "Mal", "Prud", "Rav", "Sauv", "Tess", "Vern",
    "Barb", "Carr", "Dur", "Ferr", "Gaud", "Jou", "Lab", "Mich", "Pag", "Quen", "Rouss", "Thib",
    "Vign", "Ald", "Bonn", "Chev", "Despr", "Esc", "Fav", "Gren", "Hug", "Lav", "Mass", "Nod",
    "Perr", "Rib", "Sarr", "Teyss", "Vach", "Aub", "Blond", "Cham", "Dam", "Estr", "Gall", "Jacqu",
    "Laf", "Mor", "Noy", "Pont", "Rey", "Tard", "Baill", "Coll", "Fleur", "Gross", "Lann", "Marq",
    "Pouj", "Rog", "Sim", "Trib", "Verd", "Brou", "Cast", "Dup",
)
SURNAME_MIDDLES: tuple[str, ...] = ("", "er", "ar", "on", "el", "ign", "oul", "and", "ev", "at", "ill")
SURNAME_ENDINGS: tuple[str, ...] = (
    "ier", "ard", "and", "aud", "eau", "el", "et", "ot", "in", "on", "ac", "at", "ès", "y", "ieux",
    "ault", "enc", "ou", "oux", "ette", "elle", "ois", "ais", "é", "as", "anne", "ereau", "illon",
    "ez", "er", "an", "ey", "ine", "eix", "iat", "oz", "ie", "is", "ieu", "aux",
)
SURNAME_PARTICLES: tuple[str, ...] = ("", "Le ", "De ", "Du ", "La ", "Des ", "D'", "Van ", "Saint-")

# Communes of the Métropole de Lyon: (INSEE COG code, postcode, name, population weight in thousands).
# Lyon is split into its arrondissements (municipal codes 69381-69389), as civil registers do.
COMMUNES: tuple[tuple[str, str, str, int], ...] = (
    ("69381", "69001", "Lyon", 30), ("69382", "69002", "Lyon", 31), ("69383", "69003", "Lyon", 103),
    ("69384", "69004", "Lyon", 36), ("69385", "69005", "Lyon", 48), ("69386", "69006", "Lyon", 52),
    ("69387", "69007", "Lyon", 85), ("69388", "69008", "Lyon", 86), ("69389", "69009", "Lyon", 50),
    ("69266", "69100", "Villeurbanne", 155), ("69259", "69200", "Vénissieux", 67),
    ("69256", "69120", "Vaulx-en-Velin", 52), ("69290", "69800", "Saint-Priest", 48),
    ("69034", "69300", "Caluire-et-Cuire", 43), ("69029", "69500", "Bron", 42),
    ("69149", "69600", "Oullins-Pierre-Bénite", 38), ("69282", "69330", "Meyzieu", 35),
    ("69286", "69140", "Rillieux-la-Pape", 31), ("69275", "69150", "Décines-Charpieu", 28),
    ("69244", "69160", "Tassin-la-Demi-Lune", 23), ("69202", "69110", "Sainte-Foy-lès-Lyon", 22),
    ("69204", "69230", "Saint-Genis-Laval", 21), ("69091", "69700", "Givors", 20),
    ("69081", "69130", "Écully", 18),
)

# Places of birth outside the métropole: French communes (INSEE codes) and foreign countries
# (INSEE country codes 99xxx with the ISO alpha-2 country).
OTHER_FRENCH_BIRTHPLACES: tuple[str, ...] = (
    "75056", "13055", "31555", "06088", "44109", "67482", "34172", "33063", "59350", "35238",
    "42218", "38185", "21231", "63113", "26362", "01053", "73065", "74010", "71270", "69264",
)
FOREIGN_BIRTHPLACES: tuple[tuple[str, str], ...] = (
    ("99350", "MA"), ("99352", "DZ"), ("99351", "TN"), ("99139", "PT"), ("99127", "IT"),
    ("99134", "ES"), ("99341", "SN"), ("99335", "ML"), ("99243", "VN"), ("99109", "DE"),
)

STREET_TYPES: tuple[tuple[str, float], ...] = (
    ("rue", 0.55), ("avenue", 0.14), ("boulevard", 0.06), ("impasse", 0.07), ("allée", 0.07),
    ("place", 0.04), ("chemin", 0.07),
)

STREET_NAMES: tuple[str, ...] = (
    "des Lilas", "Victor Hugo", "de la République", "Jean Jaurès", "Pasteur", "du Général de Gaulle",
    "de la Paix", "des Écoles", "de la Gare", "du Moulin", "des Acacias", "Voltaire", "Gambetta",
    "Émile Zola", "Paul Bert", "Anatole France", "Jean Moulin", "des Tilleuls", "du Stade",
    "de l'Église", "des Peupliers", "Garibaldi", "Lafayette", "Duguesclin", "de Créqui", "Vendôme",
    "Servient", "de Marseille", "Pierre Corneille", "de la Tête d'Or", "Masséna", "de Saxe",
    "des Brotteaux", "de la Croix-Rousse", "des Canuts", "des Charmettes", "Francis de Pressensé",
    "Léon Blum", "Henri Barbusse", "Marcel Cachin", "Salvador Allende", "Gabriel Péri",
    "du 8 Mai 1945", "du 11 Novembre 1918", "des Roses", "des Mimosas", "des Cerisiers", "du Château",
    "du Parc", "des Jardins", "de la Mairie", "Saint-Jean", "Sainte-Hélène", "Jules Ferry",
    "Aristide Briand", "Georges Clemenceau", "de Verdun", "de la Liberté", "des Alpes", "du Lyonnais",
    "Paul Santy", "Berthelot", "Jean Macé", "Félix Faure", "Lacassagne", "des Platanes", "du Lavoir",
    "des Vignes", "de la Source", "des Sablons", "Antoine de Saint-Exupéry", "Marie Curie",
    "Louise Michel", "Simone Veil", "Condorcet", "Ampère", "des Marronniers", "de Champagne",
    "du Bourbonnais", "des Érables",
)

# Free e-mail providers used by French households, most common first.
EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "orange.fr", "hotmail.fr", "free.fr", "laposte.net", "yahoo.fr", "sfr.fr",
    "outlook.fr", "wanadoo.fr", "icloud.com", "bbox.fr", "live.fr",
)
